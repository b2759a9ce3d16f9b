"""LogisticRegression and LinearSVC lower levels: solutions against scikit-learn, hypergradients
against finite differences, and refusals of unsupported settings."""

import warnings

import numpy as np
import pytest
from scipy import sparse
from scipy.linalg import LinAlgWarning
from scipy.optimize import minimize
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from _search_helpers import check_hypergradient, fold_problem
from skbilevel.problems import BilevelProblem, linear_classifiers as lc
from skbilevel.problems.estimator_base import ValidationLoss
from skbilevel.problems.linear_classifiers import LinearSVCLowerLevel, LogisticRegressionLowerLevel

CASES = [(k, sp, w, fi) for k in (2, 3) for sp in (False, True) for w in (False, True) for fi in (True, False)]
IDS = [f"{k}cls-{'sparse' if sp else 'dense'}-{'sw' if w else 'nosw'}-{'icpt' if fi else 'noicpt'}"
       for k, sp, w, fi in CASES]


def _data(n_classes, as_sparse, weighted, seed=0, n=40, p=5):
    """Overlapping classes (no separable fold), a sparse variant with about half the entries zero."""
    rng = np.random.default_rng(seed)
    y = np.arange(n + 20) % n_classes
    X = rng.normal(size=(n + 20, p)) + 0.8 * np.eye(n_classes, p)[y]
    if as_sparse:
        X[rng.random(X.shape) < 0.5] = 0.0
        X = sparse.csr_matrix(X)
    sw = rng.uniform(0.5, 2.0, size=n) if weighted else None
    return X[:n], y[:n], X[n:], y[n:], sw


def _compare(lower, y, est, rtol):
    coef, intercept = lower.coef_intercept(y)
    scale = max(1.0, np.abs(est.coef_).max())
    np.testing.assert_allclose(coef, est.coef_, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(intercept, np.broadcast_to(est.intercept_, intercept.shape), rtol=0, atol=rtol * scale)


def _relative_gradient(lower, x, y):
    g0 = np.abs(lower.grad_y(x, np.zeros(lower.n_var))).max()
    return np.abs(lower.grad_y(x, y)).max() / g0


# -- solutions --------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes,as_sparse,weighted,fit_intercept", CASES, ids=IDS)
def test_logistic_solution_matches_sklearn(n_classes, as_sparse, weighted, fit_intercept):
    X, y, _, _, sw = _data(n_classes, as_sparse, weighted)
    est = LogisticRegression(C=3.0, fit_intercept=fit_intercept, tol=1e-10, max_iter=10_000)
    lower = LogisticRegressionLowerLevel(est, X, y, ["C"], ["log"], sample_weight=sw)
    x = np.log([3.0])
    sol, ok = lower.solve(x, None, 1e-12)
    assert ok and _relative_gradient(lower, x, sol) < 1e-10
    _compare(lower, sol, est.fit(X, y, sample_weight=sw), 1e-5)
    assert lower.decision(x, sol, X).shape == ((len(y),) if n_classes == 2 else (len(y), n_classes))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_solution_matches_scipy(n_classes):
    """The objective written out independently, minimised by L-BFGS to a tight tolerance."""
    X, y, _, _, sw = _data(n_classes, False, True)
    C, p = 0.7, X.shape[1]
    K = 1 if n_classes == 2 else n_classes
    Y = np.eye(n_classes)[y]

    def objective(z):  # two classes: one vector and the logistic loss; more: softmax over K vectors
        Z = z.reshape(K, p + 1)
        D = X @ Z[:, :-1].T + Z[:, -1]
        if K == 1:
            D = np.column_stack([-D / 2, D / 2])  # softmax of (-d/2, d/2) is the logistic of d
        R = np.exp(D - logsumexp(D, axis=1, keepdims=True)) - Y
        if K == 1:
            R = (R[:, 1:] - R[:, :1]) / 2
        G = C * np.column_stack([(sw[:, None] * R).T @ X, (sw[:, None] * R).sum(0)])
        G[:, :-1] += Z[:, :-1]
        f = C * sw @ (logsumexp(D, axis=1) - (D * Y).sum(1)) + 0.5 * np.sum(Z[:, :-1] ** 2)
        return f, G.ravel()

    res = minimize(objective, np.zeros(K * (p + 1)), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})
    Z = res.x.reshape(K, p + 1)
    Z[:, -1] -= Z[:, -1].mean() if K > 1 else 0.0
    lower = LogisticRegressionLowerLevel(LogisticRegression(), X, y, ["C"], ["log"], sample_weight=sw)
    sol, ok = lower.solve(np.log([C]), None, 1e-12)
    assert ok and _relative_gradient(lower, np.log([C]), sol) < 1e-10
    np.testing.assert_allclose(sol, Z.ravel(), atol=1e-6)


@pytest.mark.parametrize("as_sparse", [False, True])
def test_logistic_liblinear_penalised_intercept(as_sparse):
    X, y, X_val, y_val, sw = _data(2, as_sparse, True)
    est = LogisticRegression(C=2.0, solver="liblinear", intercept_scaling=2.5, tol=1e-12, max_iter=10_000)
    lower = LogisticRegressionLowerLevel(est, X, y, ["C"], ["log"], sample_weight=sw)
    sol, ok = lower.solve(np.log([2.0]), None, 1e-12)
    assert ok
    _compare(lower, sol, est.fit(X, y, sample_weight=sw), 1e-5)
    problem = fold_problem(LogisticRegressionLowerLevel, est, X, y, X_val, y_val, ["C"], ["log"], sw)
    check_hypergradient(problem, np.log([0.5]))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_warm_start_saves_iterations(n_classes):
    X, y, _, _, sw = _data(n_classes, False, True)
    lower = LogisticRegressionLowerLevel(LogisticRegression(), X, y, ["C"], ["log"], sample_weight=sw)
    y1, _ = lower.solve(np.log([1.0]))
    _, cold = lower._lbfgs(np.log([1.2]), None, 1e-8)
    _, warm = lower._lbfgs(np.log([1.2]), y1, 1e-8)
    assert warm < cold


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_lbfgs_is_scikit_learns(n_classes):
    """The direct L-BFGS-B run takes scikit-learn's 'lbfgs' iterates: the same point at a loose tol."""
    X, y, _, _, sw = _data(n_classes, False, True)
    est = LogisticRegression(C=0.7, solver="lbfgs", tol=1e-3, max_iter=1000).fit(X, y, sample_weight=sw)
    lower = LogisticRegressionLowerLevel(est, X, y, ["C"], ["log"], sample_weight=sw)
    sol, n_iter = lower._lbfgs(np.log([0.7]), None, 1e-3)
    assert n_iter == est.n_iter_[0]
    coef, intercept = lower.coef_intercept(sol)
    np.testing.assert_allclose(coef, est.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(intercept, est.intercept_, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("class_weight", ["balanced", {0: 0.5, 1: 2.0, 2: 1.5}])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_class_weight(n_classes, class_weight):
    X, y, _, _, sw = _data(n_classes, False, True)
    y = np.where(np.arange(len(y)) % 4 == 0, 0, y)  # unbalanced
    for cls, kw in ((LogisticRegression, {}), (LinearSVC, {"dual": True})):
        est = cls(C=2.0, class_weight=class_weight, tol=1e-10, max_iter=100_000, **kw)
        lower_cls = LogisticRegressionLowerLevel if cls is LogisticRegression else LinearSVCLowerLevel
        lower = lower_cls(est, X, y, ["C"], ["log"], sample_weight=sw)
        sol, ok = lower.solve(np.log([2.0]), None, 1e-12)
        assert ok
        _compare(lower, sol, est.fit(X, y, sample_weight=sw), 1e-5)


@pytest.mark.parametrize("n_classes,as_sparse,weighted,fit_intercept", CASES, ids=IDS)
def test_svc_solution_matches_sklearn(n_classes, as_sparse, weighted, fit_intercept):
    X, y, _, _, sw = _data(n_classes, as_sparse, weighted)
    # liblinear's dual solver reaches tol=1e-10; the primal one (TRON) stops earlier
    est = LinearSVC(C=3.0, fit_intercept=fit_intercept, intercept_scaling=1.5, dual=True, tol=1e-10,
                    max_iter=100_000)
    lower = LinearSVCLowerLevel(est.set_params(dual="auto"), X, y, ["C"], ["log"], sample_weight=sw)
    x = np.log([3.0])
    sol, ok = lower.solve(x, None, 1e-12)
    assert ok and _relative_gradient(lower, x, sol) < 1e-10
    _compare(lower, sol, est.set_params(dual=True).fit(X, y, sample_weight=sw), 1e-6)
    warm, ok = lower.solve(np.log([3.3]), sol, 1e-12)  # Newton from the previous solution
    cold, _ = lower.solve(np.log([3.3]), None, 1e-12)
    assert ok
    np.testing.assert_allclose(warm, cold, atol=1e-9)


# -- hypergradients ------------------------------------------------------------------------
@pytest.mark.parametrize("lower_cls,estimator", [(LogisticRegressionLowerLevel, LogisticRegression()),
                                                 (LinearSVCLowerLevel, LinearSVC())], ids=["logistic", "svc"])
@pytest.mark.parametrize("n_classes,as_sparse,weighted,fit_intercept", CASES, ids=IDS)
def test_hypergradient_matches_finite_differences(lower_cls, estimator, n_classes, as_sparse, weighted,
                                                  fit_intercept):
    X, y, X_val, y_val, sw = _data(n_classes, as_sparse, weighted, seed=1)
    estimator = estimator.set_params(fit_intercept=fit_intercept)
    log = fold_problem(lower_cls, estimator, X, y, X_val, y_val, ["C"], ["log"], sw)
    for C in (0.1, 10.0):
        check_hypergradient(log, np.log([C]))
    linear = fold_problem(lower_cls, estimator, X, y, X_val, y_val, ["C"], ["linear"], sw)
    check_hypergradient(linear, np.array([1.0]))


@pytest.mark.parametrize("loss", ["squared", "log", "squared_hinge"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_every_validation_loss_on_classifiers(loss, n_classes):
    """Each validation loss is a per-sample sum over classes whose gradient is that of its value; with
    3 classes 'squared' compares the decision values with the one-vs-rest targets +-1 (3 validation
    samples, as many as classes: no broadcast of class indices against the classes)."""
    X, y, X_val, y_val, _ = _data(n_classes, False, False, seed=2)
    lower = LogisticRegressionLowerLevel(LogisticRegression(), X, y, ["C"], ["log"])
    for Xv, yv in ((X_val, y_val), (X_val[:3], np.arange(3) % n_classes)):
        problem = BilevelProblem(ValidationLoss(lower, Xv, yv, loss=loss), lower)
        check_hypergradient(problem, np.log([1.0]))
    x = np.log([1.0])
    w, _ = lower.solve(x, None, 1e-12)
    d = lower.decision(x, w, X_val)
    if loss == "squared":
        targets = 2.0 * (y_val[:, None] == np.arange(n_classes)) - 1.0
        expected = (d - (targets[:, 1] if n_classes == 2 else targets)) ** 2
        expected = expected.sum(axis=1) if n_classes > 2 else expected
        assert ValidationLoss(lower, X_val, y_val, loss=loss).value(x, w) == pytest.approx(expected.mean())


@pytest.mark.parametrize("lower_cls", [LogisticRegressionLowerLevel, LinearSVCLowerLevel])
def test_matrix_free_adjoint(monkeypatch, lower_cls):
    """Above DENSE_LIMIT the Hessian is applied inside CG (multinomial: with the gauge term)."""
    X, y, X_val, y_val, sw = _data(3, True, True)
    estimator = LogisticRegression() if lower_cls is LogisticRegressionLowerLevel else LinearSVC()
    problem = fold_problem(lower_cls, estimator, X, y, X_val, y_val, ["C"], ["log"], sw)
    x = np.log([2.0])
    sol, _ = problem.lower.solve(x, None, 1e-12)
    g = problem.upper.gradient(x, sol)[1]
    dense = problem.lower.adjoint(x, sol, g)[0]
    monkeypatch.setattr(lc, "DENSE_LIMIT", 0)
    sol2, ok = problem.lower.solve(x, None, 1e-12)
    assert ok
    np.testing.assert_allclose(sol2, sol, atol=1e-8)
    np.testing.assert_allclose(problem.lower.adjoint(x, sol, g)[0], dense, rtol=1e-7, atol=1e-10)
    check_hypergradient(problem, x)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_multinomial_hessian_matches_its_products(n_classes):
    """The dense Hessian (for the multinomial, one rank-k update of [u_k Xa]) has the columns H e_j."""
    X, y, _, _, sw = _data(n_classes, False, True)
    lower = LogisticRegressionLowerLevel(LogisticRegression(), X, y, ["C"], ["log"], sample_weight=sw)
    x = np.log([1.5])
    sol, _ = lower.solve(x, None, 1e-10)
    columns = np.column_stack([lower.hvp(x, sol, e) for e in np.eye(lower.n_var)])
    np.testing.assert_allclose(lower._hessian(x, sol), columns, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_single_precision_hessian_is_the_hessian_to_single_precision(n_classes):
    """The preconditioner's Hessian, formed in single precision, is the exact one to about 1e-7 of its norm
    (a preconditioner changes CG's speed, never its answer: the adjoint test above holds with it)."""
    X, y, _, _, sw = _data(n_classes, False, True, n=300, p=30)
    lower = LogisticRegressionLowerLevel(LogisticRegression(), X, y, ["C"], ["log"], sample_weight=sw)
    x = np.log([3.0])
    sol, _ = lower.solve(x, None, 1e-10)
    exact, single = lower._hessian(x, sol), lower._hessian(x, sol, single=True)
    assert single.dtype == np.float64
    error = np.abs(single - exact).max() / np.abs(exact).max()
    assert 0 < error < 1e-5  # rounded (so it did run in single precision), but only to float32's precision


def test_comparison_tol_reads_scikit_learns_stopping_test():
    """Compared points of the multinomial are solved as scikit-learn's 'lbfgs' stops (max |grad| of
    f / (C sum s) at most the estimator's tol) where that is looser than the search's relative tol, at
    most 10x looser; on large unscaled features, and for two classes with a dense Hessian, tol stays."""
    X, y, _, _, sw = _data(3, False, True, n=200, p=8)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    lower = LogisticRegressionLowerLevel(LogisticRegression(), X, y, ["C"], ["log"], sample_weight=sw)
    g0 = np.abs(lower.grad_y(np.zeros(1), np.zeros(lower.n_var))).max() / lower.s.sum()  # at C = 1
    assert g0 < 1
    tol = lower.comparison_tol(1e-4)
    assert tol == pytest.approx(min(1e-4 / g0, 1e-3)) and tol > 1e-4
    x = np.log([2.0])
    sol, ok = lower.solve(x, None, tol)
    assert ok
    scaled_gradient = np.abs(lower.grad_y(x, sol)).max() / (2.0 * lower.s.sum())
    assert scaled_gradient <= 1e-4 * (1 + 1e-9) and _relative_gradient(lower, x, sol) <= tol
    loose = LogisticRegressionLowerLevel(LogisticRegression(tol=1.0), X, y, ["C"], ["log"], sample_weight=sw)
    assert loose.comparison_tol(1e-4) == pytest.approx(1e-3)
    unscaled = LogisticRegressionLowerLevel(LogisticRegression(), X * 1e4, y, ["C"], ["log"], sample_weight=sw)
    assert unscaled.comparison_tol(1e-4) == 1e-4
    Xb, yb, _, _, swb = _data(2, False, True, n=200, p=8)
    binary = LogisticRegressionLowerLevel(LogisticRegression(), Xb, yb, ["C"], ["log"], sample_weight=swb)
    assert binary.comparison_tol(1e-4) == 1e-4


@pytest.mark.parametrize("lower_cls", [LogisticRegressionLowerLevel, LinearSVCLowerLevel])
def test_preconditioned_cg_keeps_its_factor_near_its_point(monkeypatch, lower_cls):
    """Above DENSE_LIMIT on dense data, CG runs preconditioned by the factorised Hessian of an earlier point,
    kept while C stays within _PRECONDITIONER_RANGE of its C (then formed anew); its adjoints equal the dense
    solve's, and the factor is not pickled with the fold."""
    import pickle

    X, y, X_val, y_val, sw = _data(3, False, True)
    estimator = LogisticRegression() if lower_cls is LogisticRegressionLowerLevel else LinearSVC()
    problem = fold_problem(lower_cls, estimator, X, y, X_val, y_val, ["C"], ["log"], sw)
    lower = problem.lower
    monkeypatch.setattr(lc, "DENSE_LIMIT", 0)
    for C, formed_at in ((2.0, 2.0), (6.0, 2.0), (50.0, 50.0)):  # 6 is within 10x of 2; 50 is not
        x = np.log([C])
        sol, ok = lower.solve(x, None, 1e-12)
        assert ok
        g = problem.upper.gradient(x, sol)[1]
        v = lower.adjoint(x, sol, g)[0]
        assert lower._kept_factor is not None and lower._kept_factor[0] == pytest.approx(formed_at)
        H = lower._hessian(x, sol)
        if lower.gauge is not None:
            H += np.outer(lower.gauge, lower.gauge)
            g = g - lower.gauge * (lower.gauge @ g)
        np.testing.assert_allclose(v, np.linalg.solve(H, g), rtol=1e-7, atol=1e-10)
    assert pickle.loads(pickle.dumps(lower))._kept_factor is None
    check_hypergradient(problem, np.log([3.0]))


def test_multinomial_gauge():
    """Intercepts sum to zero, and the adjoint solves H v = g although H is singular."""
    X, y, X_val, y_val, _ = _data(3, False, False)
    problem = fold_problem(LogisticRegressionLowerLevel, LogisticRegression(), X, y, X_val, y_val, ["C"], ["log"])
    x = np.log([1.0])
    sol, _ = problem.lower.solve(x, None, 1e-12)
    _, b = problem.lower.coef_intercept(sol)
    assert abs(b.sum()) < 1e-10
    g = problem.upper.gradient(x, sol)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinAlgWarning)  # the gauge term makes the system regular
        v, _ = problem.lower.adjoint(x, sol, g)
    np.testing.assert_allclose(problem.lower.hvp(x, sol, v), g, atol=1e-10)


# -- refusals -------------------------------------------------------------------------------
@pytest.mark.parametrize("estimator,n_classes,match", [
    (LogisticRegression(l1_ratio=1.0, solver="saga"), 2, "L2 penalty"),
    (LogisticRegression(l1_ratio=0.5, solver="saga"), 2, "L2 penalty"),
    (LogisticRegression(penalty=None), 2, "L2 penalty"),
    (LogisticRegression(penalty="l1", solver="liblinear"), 2, "L2 penalty"),
    (LogisticRegression(solver="liblinear", dual=True), 2, "dual=True"),
    (LogisticRegression(solver="liblinear"), 3, "multi-class"),
    (LinearSVC(penalty="l1", dual=False), 2, "penalty='l2'"),
    (LinearSVC(loss="hinge"), 2, "loss='squared_hinge'"),
    (LinearSVC(multi_class="crammer_singer"), 3, "multi_class='ovr'"),
], ids=["l1", "elasticnet", "none", "l1-deprecated", "dual", "liblinear-multiclass", "svc-l1", "svc-hinge",
        "svc-crammer-singer"])
def test_unsupported_settings_raise(estimator, n_classes, match):
    X, y, _, _, _ = _data(n_classes, False, False)
    lower_cls = LogisticRegressionLowerLevel if isinstance(estimator, LogisticRegression) else LinearSVCLowerLevel
    with pytest.raises(ValueError, match=match):
        lower_cls(estimator, X, y, ["C"], ["log"])


def test_unregularised_and_unknown_hyperparameters_raise():
    X, y, _, _, _ = _data(2, False, False)
    with pytest.raises(ValueError, match="C=inf"):
        LogisticRegressionLowerLevel(LogisticRegression(C=np.inf), X, y, [], [])
    with pytest.raises(ValueError, match="cannot be differentiated"):
        LinearSVCLowerLevel(LinearSVC(), X, y, ["tol"], ["log"])


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("start_C", [1.0, 1.05, 30.0])
def test_logistic_warm_started_tight_solve_matches_a_cold_one(n_classes, start_C, monkeypatch):
    """A tight warm-started solve (Newton from ``y0`` first) ends where a cold one does, near or far;
    wide data takes the matrix-free CG path."""
    X, y, _, _, sw = _data(n_classes, False, True, p=210)
    lower = LogisticRegressionLowerLevel(LogisticRegression(), X, y, ["C"], ["log"], sample_weight=sw)
    assert lower.n_var > lc.DENSE_LIMIT
    cold, ok_cold = lower.solve(np.log([1.0]), None, 1e-10)
    y0, _ = lower.solve(np.log([start_C]), None, 1e-4)
    calls = []
    fit = lower._lbfgs
    monkeypatch.setattr(lower, "_lbfgs", lambda *a, **k: calls.append(1) or fit(*a, **k))
    warm, ok_warm = lower.solve(np.log([1.0]), y0, 1e-10)
    assert ok_cold and ok_warm
    np.testing.assert_allclose(warm, cold, rtol=0, atol=1e-7 * max(1.0, np.abs(cold).max()))
    if start_C == 1.0:  # a re-solve at the same point: Newton alone
        assert not calls


@pytest.mark.parametrize("C", [1.0, 1e4])
def test_single_precision_newton_steps_reach_the_double_precision_solution(C, monkeypatch):
    """Newton's dense steps with a single-precision Hessian converge to the same point, checked in double
    precision, as exact steps; at a large C on badly scaled features (a Hessian conditioned beyond single
    precision) too: five steps there against three."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)) * np.logspace(-3, 3, 8)
    y = (X @ (rng.normal(size=8) / np.logspace(-3, 3, 8)) + rng.normal(size=300) > 0).astype(int)
    lower = LogisticRegressionLowerLevel(LogisticRegression(), X, y, ["C"], ["log"])
    x = np.log([C])
    calls = []
    solve_hessian = lower._solve_hessian
    monkeypatch.setattr(lower, "_solve_hessian", lambda *a, **k: calls.append(k.get("single")) or solve_hessian(*a, **k))
    y_single, ok_single = lower.solve(x, tol=1e-10)
    assert ok_single and any(calls)
    monkeypatch.setattr(LogisticRegressionLowerLevel, "_single_precision_steps", False)
    y_double, ok_double = lower.solve(x, tol=1e-10)
    assert ok_double
    scale = np.abs(y_double).max()
    np.testing.assert_allclose(y_single, y_double, rtol=0, atol=1e-7 * scale)
    # the gradient, in double precision, is at the tolerance either way
    assert np.abs(lower.grad_y(x, y_single)).max() <= 1e-10 * lower._gradient_scale(x) * 10
