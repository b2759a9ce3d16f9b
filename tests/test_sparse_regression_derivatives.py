"""Lasso / ElasticNet lower levels: exact solves, hypergradients away from kinks, warm starts."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import ElasticNet, Lasso

from _search_helpers import check_hypergradient, fold_problem
from skbilevel.methods.hypergradient import hypergradient
from skbilevel.problems.sparse_regression import ElasticNetLowerLevel, LassoLowerLevel, fold_moments

EN_NAMES, EN_SCALES = ("alpha", "l1_ratio"), ("log", "linear")


def _data(seed=0, n=50, p=20, n_val=30):
    rng = np.random.default_rng(seed)
    w = np.zeros(p)
    w[:4] = [2.0, -3.0, 1.5, 1.0]  # sparse ground truth
    X = rng.normal(size=(n, p)) + 1.0  # non-zero means: centring matters
    X_val = rng.normal(size=(n_val, p)) + 1.0
    t = X @ w + 3.0 + 0.5 * rng.normal(size=n)
    t_val = X_val @ w + 3.0 + 0.5 * rng.normal(size=n_val)
    return X, t, X_val, t_val, rng.uniform(0.5, 2.0, size=n)


X, T, X_VAL, T_VAL, SW = _data()
CASES = [(sparse, weighted, fit_intercept)
         for sparse in (False, True) for weighted in (False, True) for fit_intercept in (True, False)]


def _case(sparse, weighted):
    return (sp.csr_matrix(X) if sparse else X), (SW if weighted else None)


def _support(lower, x, tol=1e-12):
    y, ok = lower.solve(np.asarray(x, float), None, tol)
    assert ok
    return frozenset(np.flatnonzero(y[:-1]))


def _assert_stable_support(lower, x, h=1e-5):
    """The support is the same at x and at every x +- h e_j: the check is away from kinks."""
    s0 = _support(lower, x)
    for j in range(len(x)):
        e = np.zeros(len(x))
        e[j] = h
        assert _support(lower, x + e) == s0 == _support(lower, x - e)
    assert 0 < len(s0) < X.shape[1]
    return s0


@pytest.mark.parametrize("sparse, weighted, fit_intercept", CASES)
@pytest.mark.parametrize("positive", [False, True])
def test_solve_matches_sklearn(sparse, weighted, fit_intercept, positive):
    Xd, sw = _case(sparse, weighted)
    for est, names, scales, rho in [
        (Lasso(fit_intercept=fit_intercept, positive=positive), ("alpha",), ("log",), 1.0),
        (ElasticNet(fit_intercept=fit_intercept, positive=positive), EN_NAMES, EN_SCALES, 0.6),
    ]:
        cls = LassoLowerLevel if isinstance(est, Lasso) else ElasticNetLowerLevel
        lower = cls(est, Xd, T, names, scales, sample_weight=sw)
        alpha = 0.15 * lower.alpha_max(rho)
        x = np.array([np.log(alpha), rho][:len(names)])
        y, ok = lower.solve(x, None, 1e-12)
        ref = type(est)(fit_intercept=fit_intercept, positive=positive, alpha=alpha, tol=1e-12,
                        max_iter=100_000, **({} if cls is LassoLowerLevel else {"l1_ratio": rho}))
        ref.fit(Xd, T, sample_weight=sw)
        assert ok
        np.testing.assert_allclose(y[:-1], ref.coef_, rtol=0, atol=1e-7)
        np.testing.assert_allclose(y[-1], ref.intercept_, rtol=0, atol=1e-7)
        assert 0 < np.count_nonzero(y[:-1]) < X.shape[1]
        if positive:
            assert (y[:-1] >= 0).all()


@pytest.mark.parametrize("sparse, weighted, fit_intercept", CASES)
def test_lasso_hypergradient(sparse, weighted, fit_intercept):
    Xd, sw = _case(sparse, weighted)
    problem = fold_problem(LassoLowerLevel, Lasso(fit_intercept=fit_intercept), Xd, T, X_VAL, T_VAL,
                           ("alpha",), ("log",), sample_weight=sw)
    amax = problem.lower.alpha_max()
    for frac in (0.03, 0.3):
        x = np.array([np.log(frac * amax)])
        _assert_stable_support(problem.lower, x)
        check_hypergradient(problem, x, rtol=1e-4)


@pytest.mark.parametrize("sparse, weighted, fit_intercept", CASES)
def test_elastic_net_hypergradient(sparse, weighted, fit_intercept):
    Xd, sw = _case(sparse, weighted)
    problem = fold_problem(ElasticNetLowerLevel, ElasticNet(fit_intercept=fit_intercept), Xd, T,
                           X_VAL, T_VAL, EN_NAMES, EN_SCALES, sample_weight=sw)
    for frac, rho in [(0.05, 0.5), (0.3, 0.9)]:
        x = np.array([np.log(frac * problem.lower.alpha_max(rho)), rho])
        _assert_stable_support(problem.lower, x)
        grad, _ = check_hypergradient(problem, x, rtol=1e-4)
        assert np.all(grad != 0)


def test_positive_hypergradient():
    problem = fold_problem(ElasticNetLowerLevel, ElasticNet(positive=True), X, T, X_VAL, T_VAL,
                           EN_NAMES, EN_SCALES, sample_weight=SW)
    x = np.array([np.log(0.1 * problem.lower.alpha_max(0.7)), 0.7])
    _assert_stable_support(problem.lower, x)
    check_hypergradient(problem, x, rtol=1e-4)


@pytest.mark.parametrize("sparse, fit_intercept", [(False, True), (True, True), (False, False)])
def test_adjoint_solves_the_full_system(sparse, fit_intercept):
    """``(d_y G)^T v = g`` with ``d_y G`` written out densely, off-support rows included."""
    Xd, sw = _case(sparse, True)
    lower = ElasticNetLowerLevel(ElasticNet(fit_intercept=fit_intercept), Xd, T, EN_NAMES, EN_SCALES,
                                 sample_weight=sw)
    x = np.array([np.log(0.1 * lower.alpha_max(0.5)), 0.5])
    y, ok = lower.solve(x, None, 1e-12)
    assert ok
    alpha, rho = np.exp(x[0]), x[1]
    n, p = X.shape
    u = SW / SW.sum()
    S = np.flatnonzero(y[:-1])
    X1 = np.column_stack([X, np.ones(n)]) if fit_intercept else np.column_stack([X, np.zeros(n)])
    J = np.eye(p + 1)  # rows off the support: G_j = w_j; no intercept: G_b = b
    J[S] = X1[:, S].T @ (u[:, None] * X1)
    J[S, S] += alpha * (1 - rho)
    if fit_intercept:
        J[p] = u @ X1
    g = np.random.default_rng(1).normal(size=p + 1)
    v, mu = lower.adjoint(x, y, g)
    assert mu.size == 0
    np.testing.assert_allclose(J.T @ v, g, rtol=0, atol=1e-9)


@pytest.mark.parametrize("cls, est, names, scales", [
    (LassoLowerLevel, Lasso(), ("alpha",), ("log",)),
    (ElasticNetLowerLevel, ElasticNet(l1_ratio=0.5), EN_NAMES, EN_SCALES),
])
def test_empty_support(cls, est, names, scales):
    """alpha >= alpha_max: w = 0, b = weighted mean of t, and the hypergradient in alpha is 0."""
    problem = fold_problem(cls, est, sp.csr_matrix(X), T, X_VAL, T_VAL, names, scales, sample_weight=SW)
    x = np.array([np.log(2.0 * problem.lower.alpha_max(0.5 if len(names) == 2 else 1.0)), 0.5][:len(names)])
    y, ok = problem.lower.solve(x, None, 1e-12)
    assert ok and not y[:-1].any()
    np.testing.assert_allclose(y[-1], SW @ T / SW.sum())
    _, grad, _ = hypergradient(problem, x, y)
    np.testing.assert_array_equal(grad, 0.0)


def test_warm_start_reduces_iterations():
    lower = ElasticNetLowerLevel(ElasticNet(), X, T, EN_NAMES, EN_SCALES, sample_weight=SW)
    x = np.array([np.log(0.05 * lower.alpha_max(0.5)), 0.5])
    y, ok = lower.solve(x, None, 1e-12)
    assert ok
    x_next = x + np.array([0.05, 0.01])  # a step of the outer loop
    alpha, rho = lower._hyper(x_next)
    _, _, cold_iter = lower._descend(alpha, rho, np.zeros(lower.n_var - 1), 1e-12)
    _, _, warm_iter = lower._descend(alpha, rho, y[:-1], 1e-12)
    assert warm_iter < cold_iter
    cold, ok_cold = lower.solve(x_next, None, 1e-12)
    warm, ok_warm = lower.solve(x_next, y, 1e-12)
    assert ok_cold and ok_warm
    np.testing.assert_allclose(warm, cold, rtol=0, atol=1e-10)
    # the warm start is not modified by scikit-learn's in-place coordinate descent
    np.testing.assert_array_equal(y, lower.solve(x, None, 1e-12)[0])


def test_solves_keep_no_state_on_the_problem():
    """One problem object shared by threads: each solve builds its own coordinate descent."""
    from concurrent.futures import ThreadPoolExecutor

    lower = ElasticNetLowerLevel(ElasticNet(), X, T, EN_NAMES, EN_SCALES, sample_weight=SW)
    points = [np.array([np.log(f * lower.alpha_max(0.5)), 0.5]) for f in (0.01, 0.3)] * 20
    alone = [lower.solve(x, None, 1e-10)[0] for x in points[:2]]
    before = dict(vars(lower))
    with ThreadPoolExecutor(4) as pool:
        shared = list(pool.map(lambda x: lower.solve(x, None, 1e-10)[0], points))
    for k, y in enumerate(shared):
        np.testing.assert_allclose(y, alone[k % 2], rtol=0, atol=1e-10)
    assert vars(lower).keys() == before.keys()


def test_polishing_makes_a_loose_solve_exact():
    """Coordinate descent stopped early still has the right support; polishing recovers w."""
    lower = LassoLowerLevel(Lasso(), X, T, ("alpha",), ("log",))
    x = np.array([np.log(0.1 * lower.alpha_max())])
    exact, _ = lower.solve(x, None, 1e-12)
    loose, ok = lower.solve(x, None, 1e-3)
    assert ok
    np.testing.assert_allclose(loose, exact, rtol=0, atol=1e-10)


def test_unsupported_settings():
    with pytest.raises(ValueError, match="1-D target"):
        LassoLowerLevel(Lasso(), X, np.column_stack([T, T]), ("alpha",), ("log",))
    with pytest.raises(ValueError, match=r"cannot be differentiated.*\['alpha'\]"):
        LassoLowerLevel(Lasso(), X, T, ("alpha", "l1_ratio"), ("log", "linear"))
    with pytest.raises(ValueError, match="scales must be one of"):
        ElasticNetLowerLevel(ElasticNet(), X, T, EN_NAMES, ("log", "logit"))


def test_invalid_user_settings_are_validated_when_the_problem_is_built():
    """scikit-learn's validation is skipped in each coordinate descent, so it runs on the user's settings first."""
    Xd, T = _data()[:2]
    with pytest.raises(ValueError, match="selection"):
        LassoLowerLevel(Lasso(selection="bogus"), Xd, T, ("alpha",), ("log",))
    with pytest.raises(ValueError, match="l1_ratio"):
        ElasticNetLowerLevel(ElasticNet(l1_ratio=2.0), Xd, T, ("alpha",), ("log",))
    lower = LassoLowerLevel(Lasso(), Xd, T, ("alpha",), ("log",))
    first, _ = lower.solve(np.log([0.1]))
    again, _ = lower.solve(np.log([0.1]), first)
    np.testing.assert_allclose(again, first, atol=1e-10)


def test_support_wider_than_the_samples_gives_a_least_squares_adjoint():
    """p > n at a small alpha: the support outgrows the centred samples, H_S is singular and w not unique.
    solve says so (ok False); the adjoint is the least-squares one of least norm, not a LinAlgError."""
    from skbilevel import BilevelSearchCV
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(10)
    Xw = rng.normal(size=(20, 40))
    tw = Xw[:, :10] @ rng.normal(size=10) + 0.1 * rng.normal(size=20)
    lower = LassoLowerLevel(Lasso(), Xw[:8], tw[:8], ("alpha",), ("log",))
    x = np.log([1e-5])
    y, ok = lower.solve(x)
    S = np.flatnonzero(y[:-1])
    assert not ok and S.size > 7
    g = rng.normal(size=lower.n_var)
    v, _ = lower.adjoint(x, y, g)
    H = lower._hessian(S, 1e-5, 1.0)
    np.testing.assert_allclose(v[S], np.linalg.pinv(H) @ (g[S] - lower.x_mean[S] * g[-1]), atol=1e-8)
    with pytest.warns(ConvergenceWarning, match="lower-level solve did not reach its tolerance"):
        # a range where every support outgrows the samples (the scan runs from the strongest penalty down
        # and stops once the loss rises: on (1e-6, 1) neither it nor the descent goes near 1e-5)
        search = BilevelSearchCV(Lasso(), {"alpha": (1e-6, 1e-4)}, cv=2, max_iter=5, initial_grid=3).fit(Xw, tw)
    assert np.isfinite(search.best_score_)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fold_moments_give_each_folds_own_gram_matrix(weighted, fit_intercept):
    # features far from zero (mean 1e4, spread 1): the moments about the mean of all samples keep the
    # centred Gram matrix exact, where sum x x^T - n xbar xbar^T would lose eight digits
    rng = np.random.default_rng(3)
    X_all = rng.normal(size=(60, 5)) + 1e4 * fit_intercept
    t_all = rng.normal(size=60)
    sw = rng.uniform(0.5, 2.0, size=60) if weighted else None
    tests = np.array_split(rng.permutation(60), 5)
    for test, moments in zip(tests, fold_moments(X_all, tests, sw, fit_intercept)):
        train = np.setdiff1d(np.arange(60), test)
        kwargs = dict(names=["alpha"], scales=["log"], sample_weight=None if sw is None else sw[train])
        est = Lasso(fit_intercept=fit_intercept)
        shared = LassoLowerLevel(est, X_all[train], t_all[train], moments=moments, **kwargs)._centred()
        own = LassoLowerLevel(est, X_all[train], t_all[train], **kwargs)._centred()
        np.testing.assert_allclose(shared["precompute"], own["precompute"], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(shared["Xy"], own["Xy"], rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(shared["y"], own["y"])
