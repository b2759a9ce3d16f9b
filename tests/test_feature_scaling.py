"""One hyperparameter per feature: FeatureScaler, its lower level's hypergradient, and the search."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import fd_gradient
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from skbilevel import BilevelSearchCV
from skbilevel.methods.hypergradient import hypergradient
from skbilevel.preprocessing import FeatureScaler
from skbilevel.problems import BilevelProblem
from skbilevel.problems.estimator_base import ValidationLoss
from skbilevel.problems.feature_scaling import FeatureScaledLowerLevel
from skbilevel.problems.sklearn_estimators import lower_level_class

RNG = np.random.default_rng(0)
X_REG = RNG.normal(size=(50, 6))
Y_REG = X_REG @ [1.5, -2.0, 0.0, 0.0, 0.7, 0.0] + 0.3 * RNG.normal(size=50)
Y_BIN = (X_REG[:, 0] - X_REG[:, 1] + 0.5 * RNG.normal(size=50) > 0).astype(int)
Y_MULTI = np.digitize(X_REG[:, 0] + 0.3 * RNG.normal(size=50), [-0.5, 0.5])


@parametrize_with_checks([FeatureScaler()])
def test_feature_scaler_is_a_sklearn_transformer(estimator, check):
    check(estimator)


def test_feature_scaler_transform_dense_sparse_and_errors():
    scale = np.array([2.0, 0.5, 1.0])
    X = np.arange(6.0).reshape(2, 3)
    scaler = FeatureScaler(scale).fit(X)
    np.testing.assert_allclose(scaler.transform(X), X * scale)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(X)), X)
    for fmt in ("csr", "csc"):
        out = scaler.transform(sp.random(4, 3, density=0.5, format=fmt, random_state=0))
        assert sp.issparse(out) and out.format == fmt
    np.testing.assert_allclose(FeatureScaler().fit_transform(X), X)
    with pytest.raises(ValueError, match="one value per feature"):
        FeatureScaler([1.0, 2.0]).fit(X)
    with pytest.raises(ValueError, match="positive"):
        FeatureScaler([1.0, -2.0, 1.0]).fit(X)


CASES = [
    (Ridge(), ["alpha"], Y_REG, 1.0),
    (Ridge(fit_intercept=False), ["alpha"], Y_REG, 3.0),
    (Lasso(), ["alpha"], Y_REG, 0.05),
    (ElasticNet(), ["alpha", "l1_ratio"], Y_REG, 0.05),
    (LogisticRegression(), ["C"], Y_BIN, 0.5),
    (LogisticRegression(), ["C"], Y_MULTI, 0.5),
    (LogisticRegression(solver="liblinear"), ["C"], Y_BIN, 0.5),
    (LinearSVC(), ["C"], Y_BIN, 0.5),
]


@pytest.mark.parametrize("to_sparse", [False, True])
@pytest.mark.parametrize("estimator, names, target, value", CASES,
                         ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)])
def test_hypergradient_per_feature_matches_finite_differences(estimator, names, target, value, to_sparse):
    X = sp.csr_matrix(X_REG) if to_sparse else X_REG
    scales = ["log"] + ["linear"] * (len(names) - 1)
    lower = FeatureScaledLowerLevel(lower_level_class(estimator), estimator, X[:35], target[:35], names, scales)
    problem = BilevelProblem(ValidationLoss(lower, X[35:], target[35:]), lower)
    log_s = np.log([1.0, 2.0, 0.5, 1.5, 0.8, 3.0])
    x = np.concatenate([[np.log(value)], [0.5] * (len(names) - 1), log_s])
    y, ok = lower.solve(x, tol=1e-12)
    assert ok
    _, grad, _ = hypergradient(problem, x, y)
    fd = fd_gradient(lambda z: problem.upper.value(z, lower.solve(z, tol=1e-12)[0]), x, h=1e-5)
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-7)
    assert np.abs(grad[len(names):]).max() > 1e-6  # the per-feature part is not trivially zero


@pytest.mark.parametrize("estimator", [Ridge(alpha=0.7), Lasso(alpha=0.05), LogisticRegression(C=0.3)])
def test_solution_is_the_pipeline_fit_in_original_coordinates(estimator):
    s = np.array([1.0, 2.0, 0.5, 1.5, 0.8, 3.0])
    target = Y_BIN if isinstance(estimator, LogisticRegression) else Y_REG
    name = "C" if isinstance(estimator, LogisticRegression) else "alpha"
    lower = FeatureScaledLowerLevel(lower_level_class(estimator), estimator, X_REG, target, [name], ["log"])
    y, _ = lower.solve(np.append(np.log(estimator.get_params()[name]), np.log(s)), tol=1e-12)
    fitted = clone(estimator).set_params(tol=1e-12, max_iter=100_000).fit(X_REG * s, target)
    np.testing.assert_allclose(y[:-1], s * fitted.coef_.ravel(), rtol=1e-5, atol=1e-7)


def _fit_search(estimator, space, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # range-edge warnings
        return BilevelSearchCV(estimator, space, **kwargs).fit(X, y)


@pytest.mark.parametrize("final, name, target", [(Lasso(), "alpha", Y_REG), (Ridge(), "alpha", Y_REG),
                                                 (LogisticRegression(), "C", Y_BIN)])
def test_search_refits_a_plain_pipeline_with_the_learned_vector(final, name, target):
    pipe = Pipeline([("std", StandardScaler()), ("scale", FeatureScaler()), ("model", final)])
    search = _fit_search(pipe, {f"model__{name}": (1e-3, 1e2), "scale__scale": (1e-2, 1e2)},
                         X_REG, target, max_iter=15)
    scales = search.best_params_["scale__scale"]
    assert isinstance(scales, np.ndarray) and scales.shape == (6,)
    assert np.all((scales >= 1e-2) & (scales <= 1e2))
    assert type(search.best_estimator_) is Pipeline
    np.testing.assert_array_equal(search.best_estimator_.named_steps["scale"].scale, scales)
    plain = clone(pipe).set_params(**search.best_params_).fit(X_REG, target)
    np.testing.assert_allclose(search.predict(X_REG), plain.predict(X_REG))
    # cv_results_: an object column of arrays, the scalar phase at ones, then the joint descent
    res = search.cv_results_
    column, start = res["param_scale__scale"], res["start"]
    assert column.dtype == object and all(v.shape == (6,) for v in column)
    scalar_rows = np.flatnonzero(start < 1)
    assert all(np.array_equal(column[i], np.ones(6)) for i in scalar_rows)
    joint_rows = np.flatnonzero(start == 1)
    assert joint_rows.size and any(not np.allclose(column[i], 1.0) for i in joint_rows)
    assert all(res["params"][i]["scale__scale"] is column[i] for i in range(len(start)))
    # the search starts from the best scalar point, so it cannot end worse (by CV score)
    assert search.best_score_ >= res["mean_test_score"][scalar_rows].max()


def test_search_scores_are_the_refit_pipelines_cv_scores():
    from sklearn.model_selection import KFold, cross_val_score
    pipe = Pipeline([("scale", FeatureScaler()), ("ridge", Ridge())])
    cv = KFold(5)
    search = _fit_search(pipe, {"ridge__alpha": (1e-2, 1e2), "scale__scale": (1e-2, 1e2)}, X_REG, Y_REG,
                         cv=cv, max_iter=10)
    expected = cross_val_score(clone(pipe).set_params(**search.best_params_), X_REG, Y_REG, cv=cv).mean()
    assert search.best_score_ == pytest.approx(expected, abs=1e-8)


def test_scalar_search_fixes_the_scalers_own_scale():
    start = np.full(6, 2.0)
    pipe = Pipeline([("scale", FeatureScaler(start)), ("ridge", Ridge())])
    search = _fit_search(pipe, {"ridge__alpha": (1e-2, 1e2), "scale__scale": (1e-2, 1e2)}, X_REG, Y_REG,
                         max_iter=3)
    first = search.cv_results_["param_scale__scale"][0]
    np.testing.assert_allclose(first, start)


@pytest.mark.parametrize("pipe, space, match", [
    (Pipeline([("scale", FeatureScaler()), ("std", StandardScaler()), ("ridge", Ridge())]),
     {"ridge__alpha": (1e-2, 1e2), "scale__scale": (1e-2, 1e2)}, "right before the final"),
    (Pipeline([("scale", FeatureScaler()), ("svc", SVC(kernel="linear"))]),
     {"svc__C": (1e-2, 1e2), "scale__scale": (1e-2, 1e2)}, "linear final step"),
    (Pipeline([("scale", FeatureScaler()), ("ridge", Ridge())]),
     {"scale__scale": (1e-2, 1e2)}, "needs a scalar hyperparameter"),
    (Pipeline([("scale", FeatureScaler()), ("ridge", Ridge())]),
     {"ridge__alpha": (1e-2, 1e2), "scale__scale": (0.0, 1e2)}, "0 < low < high"),
])
def test_per_feature_search_messages(pipe, space, match):
    with pytest.raises(ValueError, match=match):
        BilevelSearchCV(pipe, space).fit(X_REG, Y_BIN if "svc" in pipe.named_steps else Y_REG)


def test_ard_kernel_ridge_hypergradient_and_search():
    from sklearn.kernel_ridge import KernelRidge
    from skbilevel.problems.feature_scaling import ARDKernelRidgeLowerLevel
    from skbilevel.problems.ridge import KernelRidgeLowerLevel
    t = np.sin(X_REG[:, 0]) + X_REG[:, 1] ** 2 + 0.1 * RNG.normal(size=50)
    estimator = KernelRidge(kernel="rbf", alpha=0.1, gamma=0.3)
    lower = ARDKernelRidgeLowerLevel(KernelRidgeLowerLevel, estimator, X_REG[:35], t[:35], ["alpha", "gamma"],
                                     ["log", "log"], sample_weight=np.linspace(0.5, 2.0, 35))
    problem = BilevelProblem(ValidationLoss(lower, X_REG[35:], t[35:]), lower)
    x = np.concatenate([np.log([0.1, 0.3]), np.log([1.0, 2.0, 0.5, 1.5, 0.8, 3.0])])
    _, grad, _ = hypergradient(problem, x, lower.solve(x)[0])
    fd = fd_gradient(lambda z: problem.upper.value(z, lower.solve(z)[0]), x)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-9)
    pipe = Pipeline([("scale", FeatureScaler()), ("kr", KernelRidge(kernel="rbf"))])
    search = _fit_search(pipe, {"kr__alpha": (1e-3, 1e1), "kr__gamma": (1e-2, 1e1), "scale__scale": (1e-2, 1e2)},
                         X_REG, t, max_iter=10)
    plain = clone(pipe).set_params(**search.best_params_).fit(X_REG, t)
    np.testing.assert_allclose(search.predict(X_REG), plain.predict(X_REG))
    assert (search.cv_results_["start"] == 1).any()


def test_plot_feature_scales():
    import matplotlib
    matplotlib.use("Agg")
    from skbilevel.plotting import plot_feature_scales
    pipe = Pipeline([("std", StandardScaler()), ("scale", FeatureScaler()), ("ridge", Ridge())])
    search = _fit_search(pipe, {"ridge__alpha": (1e-2, 1e2), "scale__scale": (1e-2, 1e2)}, X_REG, Y_REG,
                         max_iter=10)
    ax = plot_feature_scales(search)
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, search.best_params_["scale__scale"])
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"x{j}" for j in range(6)]
    ax = plot_feature_scales(search, top=3, feature_names=list("abcdef"))
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 3 and heights == sorted(heights, reverse=True)
    with pytest.raises(ValueError, match="6 names"):
        plot_feature_scales(search, feature_names=["a"])
    scalar = _fit_search(Ridge(), {"alpha": (1e-2, 1e2)}, X_REG, Y_REG)
    with pytest.raises(ValueError, match="one value per feature"):
        plot_feature_scales(scalar)


def test_both_phases_use_the_same_folds_of_a_generator_cv():
    from sklearn.model_selection import KFold
    pipe = Pipeline([("scale", FeatureScaler()), ("lasso", Lasso())])
    space = {"lasso__alpha": (1e-3, 1e1), "scale__scale": (1e-2, 1e2)}
    from_generator = _fit_search(pipe, space, X_REG, Y_REG, cv=KFold(4).split(X_REG), max_iter=5)
    from_splitter = _fit_search(pipe, space, X_REG, Y_REG, cv=KFold(4), max_iter=5)
    assert from_generator.n_splits_ == 4
    np.testing.assert_allclose(from_generator.cv_results_["mean_test_score"],
                               from_splitter.cv_results_["mean_test_score"])


@pytest.mark.parametrize("final, space, target", [
    (ElasticNet(), {"en__alpha": (1e-3, 1e1), "en__l1_ratio": (0.1, 0.9, "linear")}, Y_REG),
    (LinearSVC(), {"en__C": (1e-3, 1e2)}, Y_BIN),
])
def test_elastic_net_and_linear_svc_take_per_feature_scales(final, space, target):
    pipe = Pipeline([("scale", FeatureScaler()), ("en", final)])
    search = _fit_search(pipe, {**space, "scale__scale": (1e-2, 1e2)}, X_REG, target, max_iter=5)
    assert search.best_params_["scale__scale"].shape == (6,)
    assert (search.cv_results_["start"] == 1).any()
