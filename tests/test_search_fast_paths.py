"""The fast paths of BilevelSearchCV: closed forms for Ridge and KernelRidge (per-fold eigendecompositions,
leave-one-out), and the Lasso / ElasticNet regularisation path of the initial scan.

Every reference is computed here: explicit linear solves, scikit-learn's own fits (one per left-out sample for
leave-one-out), central differences.
"""

import numpy as np
import pytest
from scipy import sparse
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import ElasticNet, Lasso, Ridge, RidgeCV
from sklearn.model_selection import KFold, LeaveOneOut, cross_val_score

from _search_helpers import fold_problem, outer_value
from conftest import fd_gradient
from skbilevel import BilevelSearchCV
from skbilevel.methods.hypergradient import hypergradient
from skbilevel.problems import BilevelProblem
from skbilevel.problems.estimator_base import ValidationLoss
from skbilevel.problems.ridge import KernelRidgeLowerLevel, RidgeLeaveOneOut, RidgeLowerLevel
from skbilevel.problems.sparse_regression import ElasticNetLowerLevel, LassoLowerLevel


def _data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.1, 10.0, size=p)  # unequal scales: a poorly conditioned Gram
    t = X[:, :3] @ [1.0, -2.0, 0.5] + rng.normal(size=n) + 3.0
    return X, t, rng.uniform(0.5, 2.0, n)


def check_hypergradient(problem, x):
    """The hypergradient agrees with central differences, relatively or, where the loss is flat in ``x``
    (a gradient near 0), to within 1e-7 of the loss itself (the differences' round-off)."""
    y, _ = problem.lower.solve(x, None, 1e-12)
    F, grad, _ = hypergradient(problem, x, y)
    fd = fd_gradient(lambda s: outer_value(problem, s), x, 1e-4)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7 * abs(F))


def _explicit_ridge(X, t, alpha, s, fit_intercept):
    """``(w, b)`` from the normal equations of ``sum_i s_i (t_i - x_i^T w - b)^2 + alpha ||w||^2``."""
    n, p = X.shape
    Xa = np.column_stack([X, np.ones(n)]) if fit_intercept else X
    D = np.eye(Xa.shape[1]) * alpha
    if fit_intercept:
        D[-1, -1] = 0.0
    sol = np.linalg.solve(Xa.T @ (s[:, None] * Xa) + D, Xa.T @ (s * t))
    return (sol[:-1], sol[-1]) if fit_intercept else (sol, 0.0)


@pytest.mark.parametrize("shape", [(40, 6), (12, 30)])  # the p x p and the n x n Gram matrix
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_ridge_eigendecomposition_equals_the_explicit_solve(shape, fit_intercept, weighted):
    X, t, s = _data(*shape)
    s = s if weighted else np.ones(len(t))
    problem = fold_problem(RidgeLowerLevel, Ridge(fit_intercept=fit_intercept), X[:-8], t[:-8], X[-8:], t[-8:],
                           ["alpha"], ["log"], s[:-8] if weighted else None)
    for alpha in (1e-3, 0.7, 300.0):
        x = np.log([alpha])
        sol, ok = problem.lower.solve(x)
        w, b = _explicit_ridge(X[:-8], t[:-8], alpha, s[:-8], fit_intercept)
        assert ok
        np.testing.assert_allclose(sol[:-1], w, rtol=1e-7, atol=1e-9 * np.abs(w).max())
        np.testing.assert_allclose(sol[-1], b, rtol=1e-7, atol=1e-9)
        check_hypergradient(problem, x)


@pytest.mark.parametrize("shape", [(14, 4), (10, 25)])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_ridge_leave_one_out_equals_refits_and_finite_differences(shape, fit_intercept, weighted):
    X, t, s = _data(*shape, seed=3)
    s = s if weighted else None
    lower = RidgeLeaveOneOut(Ridge(fit_intercept=fit_intercept), X, t, ["alpha"], ["log"], sample_weight=s)
    problem = BilevelProblem(ValidationLoss(lower, lower.X, t), lower)
    for alpha in (0.01, 2.0, 50.0):
        x = np.log([alpha])
        sol, _ = lower.solve(x)
        refits = []
        for i in range(len(t)):
            keep = np.arange(len(t)) != i
            model = Ridge(alpha=alpha, fit_intercept=fit_intercept)
            refits.append(model.fit(X[keep], t[keep], sample_weight=None if s is None else s[keep])
                          .predict(X[i:i + 1])[0])
        np.testing.assert_allclose(lower.decision(x, sol, lower.X), refits, rtol=1e-8, atol=1e-9)
        # any other array gets the plain predictions of the fit on all samples
        np.testing.assert_allclose(lower.decision(x, sol, X.copy()), X @ sol[:-1] + sol[-1], rtol=1e-12)
        check_hypergradient(problem, x)


@pytest.mark.filterwarnings("ignore:BilevelSearchCV")  # the short descent of the Pipeline search
def test_leave_one_out_search_scores_as_refits_and_ridgecv():
    X, t, _ = _data(25, 8, seed=4)
    search = BilevelSearchCV(Ridge(), {"alpha": (1e-3, 1e3)}, cv=LeaveOneOut(),
                             scoring="neg_mean_squared_error").fit(X, t)
    alpha = search.best_params_["alpha"]
    brute = cross_val_score(Ridge(alpha=alpha), X, t, cv=LeaveOneOut(), scoring="neg_mean_squared_error").mean()
    assert search.best_score_ == pytest.approx(brute, rel=1e-8)
    assert search.best_score_ == pytest.approx(RidgeCV(alphas=[alpha]).fit(X, t).best_score_, rel=1e-8)
    # the optimum of the leave-one-out error: no value of a fine grid does better
    grid = RidgeCV(alphas=np.logspace(-3, 3, 200)).fit(X, t)
    assert search.best_score_ >= grid.best_score_ - 1e-6 * abs(grid.best_score_)
    assert search.n_splits_ == 1 and "split0_test_score" in search.cv_results_
    # with earlier Pipeline steps (refitted per left-out sample) no closed form applies: n folds
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    piped = BilevelSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": (1e-1, 1e1)},
                            cv=LeaveOneOut(), scoring="neg_mean_squared_error", max_iter=2).fit(X, t)
    assert piped.n_splits_ == len(t)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_kernel_ridge_alpha_only_eigendecomposition(weighted, kernel):
    X, t, s = _data(30, 5, seed=5)
    s = s if weighted else None
    estimator = KernelRidge(kernel=kernel, gamma=0.2)
    problem = fold_problem(KernelRidgeLowerLevel, estimator, X[:22], t[:22], X[22:], t[22:], ["alpha"], ["log"],
                           None if s is None else s[:22])
    assert problem.lower.eigen is not None
    for alpha in (1e-2, 1.0, 30.0):
        x = np.log([alpha])
        sol, _ = problem.lower.solve(x)
        ref = KernelRidge(kernel=kernel, gamma=0.2, alpha=alpha).fit(X[:22], t[:22],
                                                                    sample_weight=None if s is None else s[:22])
        np.testing.assert_allclose(sol, ref.dual_coef_, rtol=1e-7, atol=1e-8 * np.abs(ref.dual_coef_).max())
        check_hypergradient(problem, x)


@pytest.mark.parametrize("to_sparse", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_lasso_path_gives_the_cold_fits(to_sparse, weighted):
    """solve_path (warm started along a path through intermediate alphas) and a cold ElasticNet.fit agree."""
    X, t, s = _data(60, 30, seed=6)
    s = s if weighted else None
    Xin = sparse.csr_matrix(X).tocsc() if to_sparse else X
    lower = LassoLowerLevel(Lasso(), Xin, t, ["alpha"], ["log"], sample_weight=s)
    alphas = lower.alpha_max() * np.array([0.5, 0.1, 0.02, 0.004])
    path = lower.solve_path(np.log(alphas)[:, None], tol=1e-12)
    for alpha, (y, ok, seconds) in zip(alphas, path):
        cold = Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, t, sample_weight=s)
        assert ok and seconds >= 0
        np.testing.assert_allclose(y[:-1], cold.coef_, atol=1e-7 * np.abs(cold.coef_).max())
        np.testing.assert_allclose(y[-1], cold.intercept_, atol=1e-7 * abs(t).max())
    # from a solution at another point, and at the scan's tolerance, to the estimator's own tolerance
    x0 = np.log(alphas[:1])[:, None]
    y0 = path[0][0]
    (y, ok, _), = lower.solve_path(np.log(alphas[1:2])[:, None], y0=y0, x0=x0[0], tol=1e-4)
    cold = Lasso(alpha=alphas[1]).fit(X, t, sample_weight=s)
    assert ok
    assert abs(lower.value(np.log(alphas[1:2]), y) - lower.value(np.log(alphas[1:2]),
                                                                np.append(cold.coef_, cold.intercept_))) <= \
        1e-4 * np.var(t)


def test_elastic_net_path_changes_l1_ratio():
    X, t, _ = _data(50, 20, seed=7)
    lower = ElasticNetLowerLevel(ElasticNet(), X, t, ["alpha", "l1_ratio"], ["log", "linear"])
    points = np.array([[np.log(1.0), 0.2], [np.log(1.0), 0.8], [np.log(0.05), 0.8], [np.log(0.05), 0.2]])
    for (la, rho), (y, ok, _) in zip(points, lower.solve_path(points, tol=1e-12)):
        cold = ElasticNet(alpha=np.exp(la), l1_ratio=rho, tol=1e-12, max_iter=100_000).fit(X, t)
        assert ok
        np.testing.assert_allclose(y[:-1], cold.coef_, atol=1e-7 * np.abs(cold.coef_).max())


@pytest.mark.filterwarnings("ignore:BilevelSearchCV start 0")  # max_iter=1: the scan is the subject
def test_scan_runs_from_the_strongest_penalty_and_stops_when_worse():
    X, t, _ = _data(80, 40, seed=8)
    cv = KFold(4, shuffle=True, random_state=0)
    lasso = BilevelSearchCV(Lasso(), {"alpha": (1e-4, 1e2)}, cv=cv, initial_grid=8, max_iter=1, refine=0).fit(X, t)
    scan = lasso.cv_results_["param_alpha"][lasso.cv_results_["start"] == -1].astype(float)
    assert np.all(np.diff(scan) < 0)  # large alpha (strong penalty) first
    losses = lasso.cv_results_["validation_loss"][lasso.cv_results_["start"] == -1]
    # one hyperparameter: it stops at the first loss above the best before it
    assert np.all(losses[:-1][1:] <= np.minimum.accumulate(losses[:-1])[:-1])
    if len(scan) < 8:
        assert losses[-1] > min(losses[:-1])
    # the scan's points are scored as scikit-learn's estimator at its own tolerance scores them
    for alpha, score in zip(scan, lasso.cv_results_["mean_test_score"][lasso.cv_results_["start"] == -1]):
        reference = cross_val_score(Lasso(alpha=alpha), X, t, cv=cv).mean()
        assert score == pytest.approx(reference, abs=1e-3)


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
@pytest.mark.parametrize("weighted", [False, True])
def test_kernel_ridge_leave_one_out_equals_refits_and_finite_differences(kernel, weighted):
    from skbilevel.problems.ridge import KernelRidgeLeaveOneOut

    X, t, s = _data(14, 4, seed=9)
    X = X / X.std(axis=0)
    s = s if weighted else None
    estimator = KernelRidge(kernel=kernel, gamma=0.3)
    lower = KernelRidgeLeaveOneOut(estimator, X, t, ["alpha"], ["log"], sample_weight=s)
    problem = BilevelProblem(ValidationLoss(lower, lower.X, t), lower)
    for alpha in (0.05, 1.0, 20.0):
        x = np.log([alpha])
        a, _ = lower.solve(x)
        refits = []
        for i in range(len(t)):
            keep = np.arange(len(t)) != i
            model = KernelRidge(kernel=kernel, gamma=0.3, alpha=alpha)
            refits.append(model.fit(X[keep], t[keep], sample_weight=None if s is None else s[keep])
                          .predict(X[i:i + 1])[0])
        np.testing.assert_allclose(lower.decision(x, a, lower.X), refits, rtol=1e-7, atol=1e-8)
        check_hypergradient(problem, x)
    with pytest.raises(ValueError, match="fixed kernel"):
        KernelRidgeLeaveOneOut(KernelRidge(kernel="rbf"), X, t, ["alpha", "gamma"], ["log", "log"])


def test_kernel_ridge_leave_one_out_search_scores_as_refits():
    X, t, _ = _data(20, 3, seed=10)
    X = X / X.std(axis=0)
    search = BilevelSearchCV(KernelRidge(kernel="rbf", gamma=0.2), {"alpha": (1e-3, 1e2)}, cv=LeaveOneOut(),
                             scoring="neg_mean_squared_error").fit(X, t)
    brute = cross_val_score(KernelRidge(kernel="rbf", gamma=0.2, **search.best_params_), X, t, cv=LeaveOneOut(),
                            scoring="neg_mean_squared_error").mean()
    assert search.n_splits_ == 1
    assert search.best_score_ == pytest.approx(brute, rel=1e-7)


def test_warm_started_lasso_scores_are_the_estimators():
    """scikit-learn's coordinate descent stops once the duality gap is below ``tol * ||y||^2``, which a start
    from the solution at a neighbouring alpha can meet before its first sweep: scored at the estimator's own
    tol, the scan's and the refinement's warm-started points were up to 1.4% off ``cross_val_score`` here."""
    from sklearn.datasets import make_regression
    X, y = make_regression(800, 200, n_informative=30, noise=20.0, random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    folds = KFold(5, shuffle=True, random_state=0)
    search = BilevelSearchCV(Lasso(), {"alpha": (1e-2, 1e2)}, cv=folds, scoring="neg_mean_squared_error",
                             random_state=0).fit(X, y)
    res = search.cv_results_
    for alpha, score in zip(res["param_alpha"], res["mean_test_score"]):
        reference = cross_val_score(Lasso(alpha=alpha), X, y, cv=folds, scoring="neg_mean_squared_error").mean()
        assert score == pytest.approx(reference, rel=1e-3)
