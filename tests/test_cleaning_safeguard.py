"""HyperCleaningClassifier's default: weights of the labels' losses, the safeguard (weighting_), label_issues_."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from conftest import fd_gradient
from skbilevel import HyperCleaningClassifier
from skbilevel.methods import hypergradient as hg
from skbilevel.problems import BilevelProblem
from skbilevel.problems.classifiers import (CrossEntropyValidationLoss, FeatureWeightedSoftmaxRegression,
                                            WeightedSoftmaxRegression)
from test_cleaning import _noisy_digits


def _f1(detected, wrong):
    return 2 * np.sum(detected & wrong) / (detected.sum() + wrong.sum())


def test_feature_weights_derivatives_match_finite_differences():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(25, 4)), np.eye(3)[rng.integers(0, 3, 25)]
    U = np.column_stack([rng.normal(size=(25, 2)), np.ones(25)])
    lower = FeatureWeightedSoftmaxRegression(X, Y, features=U, alpha=0.1)
    x, theta, v = rng.normal(size=3), 0.5 * rng.normal(size=lower.n_var), rng.normal(size=lower.n_var)
    np.testing.assert_allclose(lower.grad_x(x, theta), fd_gradient(lambda s: lower.value(s, theta), x), atol=1e-8)
    np.testing.assert_allclose(lower.cross_vjp(x, theta, v), fd_gradient(lambda s: lower.grad_y(s, theta) @ v, x),
                               rtol=1e-5, atol=1e-9)
    # the per-sample model at x_i = u_i^T x is the same lower level
    per_sample = WeightedSoftmaxRegression(X, Y, alpha=0.1)
    assert lower.value(x, theta) == pytest.approx(per_sample.value(U @ x, theta), rel=1e-12)
    X_val, Y_val = rng.normal(size=(10, 4)), np.eye(3)[rng.integers(0, 3, 10)]
    problem = BilevelProblem(CrossEntropyValidationLoss(lower, X_val, Y_val), lower)
    theta, ok = lower.solve(x, tol=1e-12)
    assert ok
    _, grad, _ = hg.hypergradient(problem, x, theta)
    fd = fd_gradient(lambda s: problem.upper.value(s, lower.solve(s, theta, tol=1e-12)[0]), x, h=1e-5)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-9)


def test_label_issues_find_the_flipped_labels_without_warnings():
    """At 40% wrong labels the mask beats the labels a model of the trusted set alone disagrees with, and
    flagging every sample; a default fit on this ordinary data raises no warning."""
    X, y_noisy, wrong, X_val, y_val, X_te, y_te = _noisy_digits(p=0.4, n_train=500, n_val=150)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = HyperCleaningClassifier(random_state=0).fit(X, y_noisy, X_val=X_val, y_val=y_val)
    assert clf.label_issues_.shape == (len(y_noisy),) and clf.label_issues_.dtype == bool
    _assert_lowest_weights_flagged(clf, range(len(y_noisy)))
    trusted = LogisticRegression(max_iter=2000).fit(X_val, y_val)
    disagreement = _f1(trusted.predict(X) != y_noisy, wrong)
    assert _f1(clf.label_issues_, wrong) >= max(disagreement, _f1(np.ones_like(wrong), wrong)) + 0.01
    assert clf.weighting_ == "learned" and clf.score(X_te, y_te) > trusted.score(X_te, y_te)


def test_rows_held_out_as_trusted_set_are_no_label_issues():
    X, y_noisy, _, _, _, _, _ = _noisy_digits(p=0.3, n_train=300)
    with pytest.warns(UserWarning, match="must be clean"):
        clf = HyperCleaningClassifier(random_state=0).fit(X, y_noisy)
    assert clf.label_issues_.shape == (300,) and not clf.label_issues_[clf.validation_indices_].any()
    _assert_lowest_weights_flagged(clf, clf.train_indices_)


def _assert_lowest_weights_flagged(clf, train_rows):
    """label_issues_ on the training rows: the round(noise_rate_ * n) rows of lowest weight."""
    issues, weights = clf.label_issues_[train_rows], clf.sample_weight_[train_rows]
    assert issues.sum() == round(clf.noise_rate_ * issues.size)
    if issues.any():
        assert weights[issues].max() <= weights[~issues].min()


def _disagreement(X_val, y_val, X, y, folds=3, seed=0):
    """The noise rate by the formula of noise_rate_, from scikit-learn's LogisticRegression on the
    trusted folds (an independent reference: the same folds, another solver)."""
    from sklearn.model_selection import StratifiedKFold
    error, disagreement = 0, 0.0
    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X_val, y_val):
        model = LogisticRegression(C=1.0 / (0.01 * fit.size), max_iter=5000).fit(X_val[fit], y_val[fit])
        error += np.sum(model.predict(X_val[held]) != y_val[held])
        disagreement += np.mean(model.predict(X) != y) / folds
    e, k = error / y_val.size, np.unique(y_val).size
    return float(np.clip((disagreement - e) / (1 - e - e / (k - 1)), 0, 1))


@pytest.mark.parametrize("p", [0.0, 0.2, 0.4])
def test_noise_rate_estimates_the_share_of_wrong_labels(p):
    """noise_rate_ follows the flip rate (within the error of a 150-row trusted set), agrees with the same
    formula on scikit-learn's fits of the trusted folds, and on clean labels few rows are flagged: fewer
    than the labels that a model of the trusted set alone disagrees with."""
    X, y_noisy, wrong, X_val, y_val, _, _ = _noisy_digits(p=p, n_train=500, n_val=150)
    clf = HyperCleaningClassifier(random_state=0).fit(X, y_noisy, X_val=X_val, y_val=y_val)
    assert abs(clf.noise_rate_ - wrong.mean()) <= 0.1, (clf.noise_rate_, wrong.mean())
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))  # the folds' seed, drawn as fit draws it
    assert clf.noise_rate_ == pytest.approx(_disagreement(X_val, y_val, X, y_noisy, seed=seed), abs=0.02)
    trusted = LogisticRegression(max_iter=2000).fit(X_val, y_val)
    if p == 0.0:
        assert clf.label_issues_.mean() < np.mean(trusted.predict(X) != y_noisy)


def test_noise_rate_is_none_when_the_trusted_models_guess():
    """Trusted labels drawn at random: the fold models are no better than chance, their disagreements say
    nothing of the training labels, and label_issues_ falls back to the weights below 1/2."""
    X, y_noisy, _, X_val, _, _, _ = _noisy_digits(p=0.2, n_train=300, n_val=150)
    y_guess = np.random.default_rng(3).integers(0, 10, len(X_val))
    clf = HyperCleaningClassifier(random_state=0).fit(X, y_noisy, X_val=X_val, y_val=y_guess)
    assert clf.noise_rate_ is None
    np.testing.assert_array_equal(clf.label_issues_, clf.sample_weight_ < 0.5)


def test_label_issues_without_trusted_folds_are_the_weights_below_one_half():
    X, y_noisy, _, X_val, y_val, _, _ = _noisy_digits(p=0.4, n_train=300, n_val=150)
    clf = HyperCleaningClassifier(safeguard_cv=None, random_state=0).fit(X, y_noisy, X_val=X_val, y_val=y_val)
    assert clf.noise_rate_ is None
    np.testing.assert_array_equal(clf.label_issues_, clf.sample_weight_ < 0.5)


def test_safeguard_keeps_the_trusted_set_alone_when_the_training_labels_are_random():
    X, _, _, X_val, y_val, X_te, y_te = _noisy_digits(p=0.0, n_train=500, n_val=150)
    y_random = np.random.default_rng(1).integers(0, 10, 500)
    clf = HyperCleaningClassifier(random_state=0).fit(X, y_random, X_val=X_val, y_val=y_val)
    scores = clf.safeguard_scores_
    assert set(scores) == {"learned", "uniform", "trusted"}
    assert all(set(s) == {"accuracy", "cross_entropy"} and 0 <= s["accuracy"] <= 1 for s in scores.values())
    assert clf.weighting_ == "trusted" == max(scores, key=lambda k: (scores[k]["accuracy"],
                                                                     -scores[k]["cross_entropy"]))
    trusted = LogisticRegression(max_iter=2000).fit(X_val, y_val).score(X_te, y_te)
    assert clf.score(X_te, y_te) >= trusted - 0.01
    # the final model is the trusted set's: the training rows do not enter it
    alone = HyperCleaningClassifier(random_state=0, safeguard_cv=None)
    alone.classes_ = clf.classes_
    theta, _ = alone._train(X_val, alone._one_hot(y_val), np.ones(len(y_val)), 0)
    coef, _ = alone._coefficients(alone._lower(X_val, alone._one_hot(y_val), None, 0), theta)
    np.testing.assert_allclose(clf.coef_, coef, rtol=1e-6, atol=1e-8)


def test_without_safeguard_the_learned_weighting_is_kept():
    X, y_noisy, _, X_val, y_val, _, _ = _noisy_digits(p=0.3, n_train=200, n_val=60)
    clf = HyperCleaningClassifier(safeguard_cv=None, random_state=0).fit(X, y_noisy, X_val=X_val, y_val=y_val)
    assert clf.weighting_ == "learned" and clf.safeguard_scores_ is None


def test_loss_weights_are_cross_fitted_and_safeguarded_on_the_same_trusted_folds(monkeypatch):
    """The features of the learned weights come from the trusted-only and uniform models. Their coefficients are
    learned fold by fold: each fold's lower level weights the training rows by the losses under that fold's own
    models, trained without its held-out trusted rows, and its upper level scores those rows alone. The safeguard
    recomputes each fold's learned weights from the same fold models, so that the held-out rows favour the learned
    weighting no more than the plain ones."""
    X, y_noisy, _, X_val, y_val, _, _ = _noisy_digits(p=0.3, n_train=200, n_val=60)
    calls, problems = [], []
    original_features = HyperCleaningClassifier._loss_features
    original_problem = HyperCleaningClassifier._cross_fitted_problem

    def features_spy(self, split, Y_tr, Y_v, seed, models):
        calls.append({name: np.array(models[name][1]) for name in ("trusted", "uniform")})
        return original_features(self, split, Y_tr, Y_v, seed, models)

    def problem_spy(self, split, Y_tr, Y_v, seed, fold_baselines):
        problems.append((original_problem(self, split, Y_tr, Y_v, seed, fold_baselines), fold_baselines))
        return problems[-1][0]

    monkeypatch.setattr(HyperCleaningClassifier, "_loss_features", features_spy)
    monkeypatch.setattr(HyperCleaningClassifier, "_cross_fitted_problem", problem_spy)
    clf = HyperCleaningClassifier(safeguard_cv=3, random_state=0).fit(X, y_noisy, X_val=X_val, y_val=y_val)
    n_folds = min(3, np.unique(y_val, return_counts=True)[1].min())  # capped by the rarest trusted class
    assert clf.method_ == "hypergradient" and clf.safeguard_scores_ is not None and n_folds >= 2
    # the full models' features (the final weights), one per fold for the bilevel problem, one per fold again
    assert len(calls) == 1 + 2 * n_folds
    full, cross_fitted, safeguarded = calls[0], calls[1:1 + n_folds], calls[1 + n_folds:]
    for fold, again in zip(cross_fitted, safeguarded):
        for name in ("trusted", "uniform"):
            assert not np.allclose(fold[name], full[name])
            np.testing.assert_array_equal(fold[name], again[name])
    assert not np.allclose(cross_fitted[0]["trusted"], cross_fitted[1]["trusted"])
    # each fold's upper level scores its held-out trusted rows; together they are every trusted row once
    (problem, fold_baselines), = problems
    held = np.concatenate([held_out for _, held_out, _ in fold_baselines])
    np.testing.assert_array_equal(np.sort(held), np.arange(len(y_val)))
    for fold, (_, held_out, _) in zip(problem.folds, fold_baselines):
        assert fold.upper.mean_weights.shape == (held_out.size,)


def test_safeguard_folds_are_capped_by_the_rarest_trusted_class():
    """Stratified folds need a trusted sample of each class per fold; with one of a class there is no safeguard
    (and no warning from the splitter)."""
    X, y_noisy, _, X_val, y_val, _, _ = _noisy_digits(p=0.2, n_train=200, n_val=60)
    keep = np.r_[np.flatnonzero(y_val != 9), np.flatnonzero(y_val == 9)[:1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = HyperCleaningClassifier(random_state=0).fit(X, y_noisy, X_val=X_val[keep], y_val=y_val[keep])
    assert clf.weighting_ == "learned" and clf.safeguard_scores_ is None


def test_paper_configuration_learns_one_weight_per_sample():
    X, y_noisy, _, X_val, y_val, _, _ = _noisy_digits(p=0.3, n_train=200, n_val=60)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        HyperCleaningClassifier(weight_model="per-sample", safeguard_cv=None, max_iter=2, random_state=0,
                                callback=lambda info: seen.append(info["weights"])).fit(X, y_noisy, X_val=X_val,
                                                                                          y_val=y_val)
        HyperCleaningClassifier(max_iter=2, random_state=0,
                                callback=lambda info: seen.append(info["weights"])).fit(X, y_noisy, X_val=X_val,
                                                                                          y_val=y_val)
    # per sample: 200 free weights; losses: the weights of 3 coefficients, still one per training sample
    assert seen[0].shape == seen[-1].shape == (200,)
    assert len(np.unique(np.round(seen[0], 12))) > 3


def test_loss_weights_need_the_logistic_model():
    X, y_noisy, _, X_val, y_val, _, _ = _noisy_digits(p=0.3, n_train=60, n_val=30)
    with pytest.raises(ValueError, match="weight_model='losses' needs model='logistic'"):
        HyperCleaningClassifier(model="mlp", weight_model="losses").fit(X, y_noisy, X_val=X_val, y_val=y_val)
    with pytest.raises(ValueError, match="safeguard_cv"):
        HyperCleaningClassifier(safeguard_cv=1).fit(X, y_noisy, X_val=X_val, y_val=y_val)
