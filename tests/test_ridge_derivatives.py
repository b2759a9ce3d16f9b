"""Ridge and KernelRidge lower levels: solutions vs scikit-learn, hypergradients vs finite differences."""

import numpy as np
import pytest
from scipy import sparse
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge

from _search_helpers import check_hypergradient, fold_problem
from skbilevel.problems.ridge import KernelRidgeLowerLevel, RidgeLowerLevel


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    w = rng.normal(size=6)
    y = X @ w + rng.normal(size=40) + 3.0
    X_val = rng.normal(size=(20, 6))
    return X, y, X_val, X_val @ w + 3.0, rng.uniform(0.5, 2.0, 40)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("to_sparse", [False, True])
def test_ridge_solution_and_hypergradient(data, fit_intercept, weighted, to_sparse):
    X, y, X_val, y_val, sw = data
    sw = sw if weighted else None
    Xin = sparse.csr_matrix(X) if to_sparse else X
    problem = fold_problem(RidgeLowerLevel, Ridge(fit_intercept=fit_intercept), Xin, y, X_val, y_val,
                           ["alpha"], ["log"], sw)
    for alpha in (0.05, 3.0, 200.0):
        x = np.array([np.log(alpha)])
        sol, ok = problem.lower.solve(x)
        ref = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X, y, sample_weight=sw)
        assert ok
        np.testing.assert_allclose(sol[:-1], ref.coef_, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(sol[-1], ref.intercept_, atol=1e-9)
        check_hypergradient(problem, x, rtol=1e-6)


def test_ridge_linear_scale_and_more_features_than_samples():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(15, 30)), rng.normal(size=15)
    X_val, y_val = rng.normal(size=(10, 30)), rng.normal(size=10)
    problem = fold_problem(RidgeLowerLevel, Ridge(), X, y, X_val, y_val, ["alpha"], ["linear"])
    sol, _ = problem.lower.solve(np.array([2.0]))
    np.testing.assert_allclose(sol[:-1], Ridge(alpha=2.0).fit(X, y).coef_, rtol=1e-9, atol=1e-11)
    check_hypergradient(problem, np.array([2.0]), rtol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_kernel_ridge_rbf(data, weighted):
    X, y, X_val, y_val, sw = data
    sw = sw if weighted else None
    problem = fold_problem(KernelRidgeLowerLevel, KernelRidge(kernel="rbf"), X, y, X_val, y_val,
                           ["alpha", "gamma"], ["log", "log"], sw)
    for alpha, gamma in ((0.3, 0.1), (0.01, 0.5)):
        x = np.log([alpha, gamma])
        sol, _ = problem.lower.solve(x)
        ref = KernelRidge(kernel="rbf", alpha=alpha, gamma=gamma).fit(X, y, sample_weight=sw)
        np.testing.assert_allclose(sol, ref.dual_coef_, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(problem.lower.decision(x, sol, X_val), ref.predict(X_val), rtol=1e-8)
        check_hypergradient(problem, x, rtol=1e-6)


def test_kernel_ridge_zero_sample_weights(data):
    """Samples of weight 0 have dual coefficient 0 in KernelRidge.fit; they are dropped, not divided by."""
    X, y, X_val, y_val, sw = data
    sw = sw.copy()
    sw[::5] = 0.0
    problem = fold_problem(KernelRidgeLowerLevel, KernelRidge(kernel="rbf"), X, y, X_val, y_val,
                           ["alpha", "gamma"], ["log", "log"], sw)
    x = np.log([0.3, 0.1])
    sol, _ = problem.lower.solve(x)
    ref = KernelRidge(kernel="rbf", alpha=0.3, gamma=0.1).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(sol, ref.dual_coef_[sw > 0], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(problem.lower.decision(x, sol, X_val), ref.predict(X_val), rtol=1e-8)
    check_hypergradient(problem, x, rtol=1e-6)


def test_kernel_ridge_linear_and_default_gamma(data):
    X, y, X_val, y_val, _ = data
    linear = fold_problem(KernelRidgeLowerLevel, KernelRidge(kernel="linear"), X, y, X_val, y_val,
                          ["alpha"], ["linear"])
    check_hypergradient(linear, np.array([2.0]), rtol=1e-6)
    rbf = fold_problem(KernelRidgeLowerLevel, KernelRidge(kernel="rbf"), X, y, X_val, y_val, ["alpha"], ["log"])
    sol, _ = rbf.lower.solve(np.array([0.0]))
    ref = KernelRidge(kernel="rbf", alpha=1.0).fit(X, y)  # gamma=None: 1 / n_features
    np.testing.assert_allclose(sol, ref.dual_coef_, rtol=1e-8)


def test_unsupported_settings(data):
    X, y, X_val, y_val, _ = data
    with pytest.raises(ValueError, match="cannot be differentiated"):
        RidgeLowerLevel(Ridge(), X, y, ["solver"], ["log"])
    with pytest.raises(ValueError, match="kernel='rbf' or 'linear'"):
        KernelRidgeLowerLevel(KernelRidge(kernel="poly"), X, y, ["alpha"], ["log"])
    with pytest.raises(ValueError, match="no gamma"):
        KernelRidgeLowerLevel(KernelRidge(kernel="linear"), X, y, ["gamma"], ["log"])
    with pytest.raises(ValueError, match="scales"):
        RidgeLowerLevel(Ridge(), X, y, ["alpha"], ["exp"])
    for cls, est in ((RidgeLowerLevel, Ridge()), (KernelRidgeLowerLevel, KernelRidge())):
        for targets in (y[:, None], np.column_stack([y, y])):
            with pytest.raises(ValueError, match=r"need a 1-D target; got y of shape \(40, [12]\)"):
                cls(est, X, targets, ["alpha"], ["log"])
