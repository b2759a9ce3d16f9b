"""Implicit differentiation (methods/hypergradient.py) against finite differences and known solutions."""

import itertools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from conftest import fd_gradient
from skbilevel.methods import hypergradient as hg
from skbilevel.problems import (BilevelProblem, LinearValidationLoss, LowerLevel, QuadraticLowerLevel, UpperLevel,
                                WeightedSquaredHingeSVM)


class _GenericSVM(WeightedSquaredHingeSVM):
    """The SVM without its structured adjoint: forces the generic KKT solve of (6.3)."""

    capabilities = WeightedSquaredHingeSVM.capabilities - {"adjoint"}


def _svm_problem(seed, per_sample, loss, lower_cls=WeightedSquaredHingeSVM, n=40, p=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = np.where(X[:, 0] + 0.7 * rng.normal(size=n) > 0, 1.0, -1.0)
    X_val = rng.normal(size=(15, p))
    y_val = np.where(X_val[:, 0] > 0, 1.0, -1.0)
    lower = lower_cls(X, y, per_sample=per_sample)
    upper = LinearValidationLoss(X_val, y_val, loss, n_hyper=lower.n_hyper, n_var=lower.n_var)
    x = 0.5 * rng.normal(size=lower.n_hyper)
    return BilevelProblem(upper, lower), x


def _outer_objective(problem):
    """``h(x) = F(x, y(x))``, the lower level solved to ``1e-13``."""
    return lambda x: problem.upper.value(x, problem.lower.solve(x, tol=1e-13)[0])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("per_sample", [True, False])
@pytest.mark.parametrize("loss", ["sigmoid", "logistic", "squared_hinge"])
def test_svm_hypergradient_matches_finite_differences(seed, per_sample, loss):
    problem, x = _svm_problem(seed, per_sample, loss)
    y, ok = problem.lower.solve(x, tol=1e-13)
    assert ok
    # strict complementarity: no training margin at 1, so the active set is locally constant
    w, b, _ = problem.lower.split(y)
    margins = problem.lower.y * (problem.lower.X @ w + b)
    assert np.min(np.abs(margins - 1.0)) > 1e-4
    _, grad, _ = hg.hypergradient(problem, x, y)
    fd = fd_gradient(_outer_objective(problem), x)
    assert np.max(np.abs(grad - fd)) <= 1e-5 * np.max(np.abs(fd))


@pytest.mark.parametrize("direct_limit", [hg.DIRECT_LIMIT, 0])
def test_generic_active_set_solve_matches_the_svm_structured_solve(direct_limit, monkeypatch):
    """Formula (6.3) in KKT form (dense and MINRES) equals the SVM's eliminated Newton system."""
    monkeypatch.setattr(hg, "DIRECT_LIMIT", direct_limit)
    for seed, per_sample in itertools.product(range(3), [True, False]):
        structured, x = _svm_problem(seed, per_sample, "logistic")
        generic, _ = _svm_problem(seed, per_sample, "logistic", lower_cls=_GenericSVM)
        y, _ = structured.lower.solve(x)
        g1 = hg.hypergradient(structured, x, y)[1]
        g2 = hg.hypergradient(generic, x, y)[1]
        np.testing.assert_allclose(g2, g1, rtol=1e-6, atol=1e-9 * np.abs(g1).max())


class _TargetUpper(UpperLevel):
    """``F = 1/2 ||y - t||^2 + rho/2 ||x||^2``."""

    def __init__(self, t, rho):
        self.t, self.rho = np.asarray(t, float), rho

    def value(self, x, y):
        return 0.5 * np.sum((y - self.t) ** 2) + 0.5 * self.rho * x @ x

    def gradient(self, x, y):
        return self.rho * x, y - self.t


# Lower level min_y 1/2 ||y||^2 - y^T M x  s.t.  y >= 0, i.e. y(x) = max(M x, 0).
_M = np.array([[1.0, 0.5], [0.5, 1.0], [-1.0, -1.0]])
_T, _RHO = np.array([1.0, 0.5, -1.0]), 0.1


def _quadratic_problem():
    lower = QuadraticLowerLevel(Q=np.eye(3), P=-_M, q=np.zeros(3), A=np.eye(3), B=np.zeros((3, 2)),
                                b0=np.zeros(3))
    return BilevelProblem(_TargetUpper(_T, _RHO), lower, (np.full(2, -3.0), np.full(2, 3.0)))


def _quadratic_solution():
    """Global minimiser by enumerating the active sets of ``y(x) = max(M x, 0)``."""
    best = None
    for support in itertools.product([False, True], repeat=3):
        S = np.array(support)
        Ms = _M[S]
        x = np.linalg.solve(Ms.T @ Ms + _RHO * np.eye(2), Ms.T @ _T[S])
        z = _M @ x
        if np.all(z[S] >= 0) and np.all(z[~S] <= 0):
            F = 0.5 * np.sum((np.maximum(z, 0) - _T) ** 2) + 0.5 * _RHO * x @ x
            if best is None or F < best[0]:
                best = (F, x)
    return best[1]


def test_quadratic_hypergradient_matches_finite_differences():
    problem = _quadratic_problem()
    x = np.array([0.8, 0.3])  # M x = (0.95, 0.7, -1.1): constraint 3 strictly active
    y, ok = problem.lower.solve(x)
    assert ok
    _, grad, _ = hg.hypergradient(problem, x, y)
    np.testing.assert_allclose(grad, fd_gradient(_outer_objective(problem), x, h=1e-5), rtol=1e-5)


@pytest.mark.parametrize("x0", [[0.2, 0.1], [2.0, -1.0], [-1.5, 2.5]])
def test_hypergradient_method_reaches_the_known_solution(x0):
    problem = _quadratic_problem()
    result = hg.solve(problem, np.array(x0), tol=1e-9)
    assert result.converged, result.message
    x_star = _quadratic_solution()
    assert np.linalg.norm(result.hyperparameters - x_star) <= 1e-3
    np.testing.assert_allclose(result.model, np.maximum(_M @ result.hyperparameters, 0), atol=1e-6)
    assert len(result.history["objective"]) == result.n_iter > 0


def test_callback_and_history():
    problem, x = _svm_problem(0, True, "logistic")
    seen = []
    result = hg.solve(problem, x, callback=lambda info: seen.append(info) or len(seen) == 2)
    assert result.n_iter == 2 and not result.converged and "callback" in result.message
    assert {"iteration", "objective", "time", "hyperparameters"} <= set(seen[0])


def test_max_iter_is_reported():
    problem, x = _svm_problem(1, True, "sigmoid")
    result = hg.solve(problem, x, max_iter=1, tol=1e-12)
    assert not result.converged and "max_iter=1" in result.message


def test_an_adjoint_stopped_at_its_cap_is_reported(monkeypatch):
    """CG stopped at its iteration cap gives an inexact hypergradient: a ConvergenceWarning from
    hypergradient(), and converged=False with the reason from solve(), which would otherwise stop
    on its tolerance as if the hypergradient were exact."""
    from skbilevel.problems.classifiers import CrossEntropyValidationLoss, WeightedSoftmaxRegression

    rng = np.random.default_rng(0)
    n, p, K = 60, 40, 8
    lower = WeightedSoftmaxRegression(rng.normal(size=(n, p)), np.eye(K)[rng.integers(0, K, n)], alpha=1e-3)
    upper = CrossEntropyValidationLoss(lower, rng.normal(size=(20, p)), np.eye(K)[rng.integers(0, K, 20)])
    problem = BilevelProblem(upper, lower, x_bounds=(-3 * np.ones(n), 3 * np.ones(n)))
    monkeypatch.setattr(hg, "DIRECT_LIMIT", 0)  # the CG path
    x = np.zeros(n)
    y, _ = lower.solve(x)
    with pytest.warns(ConvergenceWarning, match="adjoint system was not solved"):
        _, inexact, _ = hg.hypergradient(problem, x, y, max_iter=5)
    _, exact, _ = hg.hypergradient(problem, x, y)
    assert np.linalg.norm(inexact - exact) > 1e-3 * np.linalg.norm(exact)
    result = hg.solve(problem, x, adjoint_max_iter=1, max_iter=300)
    assert not result.converged and "adjoint solve(s) stopped before adjoint_tol" in result.message
    assert "adjoint_max_iter=1" in result.message
    result = hg.solve(problem, x, max_iter=300)
    assert "adjoint" not in result.message


@pytest.mark.parametrize("scale", [1.0, 1e3, 1e7])
def test_active_set_does_not_depend_on_the_scale_of_a_constraint_row(scale):
    """Scaling a row of (A, b) keeps the feasible set and y(x), divides its multiplier by the scale
    and multiplies its (solver-sized) slack: the active set and the hypergradient stay put."""
    from skbilevel.problems import TargetUpper

    rng = np.random.default_rng(6)
    nv, nh, m = 5, 3, 4
    M = rng.normal(size=(nv, nv))
    Q, P, q = M @ M.T + 0.5 * np.eye(nv), rng.normal(size=(nv, nh)), rng.normal(size=nv)
    A, B, b0 = rng.normal(size=(m, nv)), rng.normal(size=(m, nh)), rng.normal(size=m) + 0.9
    x, upper = rng.normal(size=nh), TargetUpper(rng.normal(size=nv), rho=0.3)
    S = np.diag([1.0, scale, 1.0, 1.0])  # row 1 is active at x
    problem = BilevelProblem(upper, QuadraticLowerLevel(Q=Q, P=P, q=q, A=S @ A, B=S @ B, b0=S @ b0))
    y, ok = problem.lower.solve(x, tol=1e-10)
    assert ok
    np.testing.assert_array_equal(hg.active_set(problem.lower, x, y), [1, 2])
    _, grad, _ = hg.hypergradient(problem, x, y)
    np.testing.assert_allclose(grad, fd_gradient(_outer_objective(problem), x, h=1e-5), rtol=1e-6)


def test_sparse_svm_adjoint_is_exact_on_badly_scaled_features():
    """Sparse X takes the conjugate-gradient path of the SVM's Newton and adjoint systems; with feature
    scales over four decades plain CG stopped at its cap (residual 1e-1), the preconditioned one does not."""
    rng = np.random.default_rng(0)
    X = sp.random(300, 60, density=0.1, random_state=0, format="csr") @ sp.diags(np.logspace(0, 4, 60))
    y = np.where(rng.random(300) < 0.5, -1.0, 1.0)
    sparse_svm, dense_svm = WeightedSquaredHingeSVM(X, y, per_sample=False), WeightedSquaredHingeSVM(X.toarray(), y,
                                                                                                  per_sample=False)
    c, g = np.array([6.0]), rng.normal(size=sparse_svm.n_var)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        t, ok = sparse_svm.solve(c)
        v, mu = sparse_svm.adjoint(c, t, g)
    assert ok
    v_dense, mu_dense = dense_svm.adjoint(c, t, g)
    np.testing.assert_allclose(v, v_dense, rtol=0, atol=1e-8 * np.abs(v_dense).max())
    np.testing.assert_allclose(mu, mu_dense, rtol=0, atol=1e-8 * np.abs(mu_dense).max())


def test_quadratic_lower_level_keeps_the_symmetric_part_of_q():
    """f = 1/2 y^T Q y + ...: a non-symmetric Q gives the gradient (Q + Q^T) y / 2, which grad_y and hvp
    must use (they used Q, inconsistent with the value and with solve)."""
    Q = np.array([[2.0, 1.5], [-0.5, 3.0]])
    lower = QuadraticLowerLevel(Q=Q, P=np.eye(2), q=np.zeros(2), A=np.zeros((0, 2)), B=np.zeros((0, 2)),
                                b0=np.zeros(0))
    x, y, h = np.array([0.3, -0.2]), np.array([0.7, -1.1]), 1e-6
    fd = fd_gradient(lambda t: lower.value(x, t), y, h)
    np.testing.assert_allclose(lower.grad_y(x, y), fd, rtol=1e-8)
    np.testing.assert_allclose(lower.hvp(x, y, np.array([1.0, 0.0])), 0.5 * (Q + Q.T)[:, 0])
    solution, ok = lower.solve(x)
    assert ok and np.abs(lower.grad_y(x, solution)).max() < 1e-7


class _NoSolver(LowerLevel):
    n_hyper, n_var = 1, 1
    capabilities = frozenset({"hvp", "cross_vjp"})

    def value(self, x, y):
        return 0.5 * float(y @ y)

    def grad_y(self, x, y):
        return y


def test_refuses_a_lower_level_without_solver():
    problem = BilevelProblem(_TargetUpper([0.0], 0.0), _NoSolver())
    with pytest.raises(ValueError, match="does not provide \\['solve'\\]"):
        hg.solve(problem, np.zeros(1))


def test_wide_data_uses_the_woodbury_solve_and_stays_exact():
    """More features than support vectors: the Newton systems go through Woodbury + Schur complement."""
    problem, x = _svm_problem(0, True, "logistic", n=30, p=60)
    lower = problem.lower
    y, ok = lower.solve(x, tol=1e-13)
    assert ok
    # KKT of the lower level: w = X^T (y * lambda), sum(y * lambda) = 0 with lambda = omega * xi
    w, b, xi = lower.split(y)
    lam = lower.weights(x) * xi
    np.testing.assert_allclose(w, lower.X.T @ (lower.y * lam), atol=1e-9)
    assert abs(lower.y @ lam) <= 1e-9
    generic, _ = _svm_problem(0, True, "logistic", lower_cls=_GenericSVM, n=30, p=60)
    np.testing.assert_allclose(hg.hypergradient(problem, x, y)[1], hg.hypergradient(generic, x, y)[1],
                               rtol=1e-6, atol=1e-12)


def test_evaluate_without_gradient_skips_the_adjoint(monkeypatch):
    """``gradient=False`` (points only compared) gives the same objective and solutions, no adjoint."""
    problem, _ = _svm_problem(0, False, "logistic")
    points = np.array([[-1.0], [0.0], [1.0]])
    full = hg.evaluate(problem, points)
    calls = []
    monkeypatch.setattr(hg, "adjoint", lambda *a, **k: calls.append(1))
    light = hg.evaluate(problem, points, gradient=False)
    assert not calls
    for (F, grad, y), (F_light, grad_light, y_light) in zip(full, light):
        assert grad.shape == (1,) and grad_light is None
        assert F_light == pytest.approx(F, rel=1e-12)
        np.testing.assert_allclose(y_light, y, rtol=1e-9, atol=1e-12)


def test_xtol_stops_at_a_repeated_probe_with_the_best_point():
    """``_stall_guard``: a trial within ``xtol`` of an evaluated point ends the run at the best one."""
    values = {0.0: 3.0, 1.0: 1.0, 2.0: 2.0}
    state = {"y": [None]}

    def fun(x):
        state["y"] = [f"solution at {x[0]}"]
        return values[float(x[0])], np.zeros(1)

    guarded = hg._stall_guard(fun, state, xtol=1e-3)
    for x in (0.0, 1.0, 2.0):
        guarded(np.array([x]))
    with pytest.raises(hg._Stalled) as stalled:
        guarded(np.array([2.0005]))
    x_best, ys = stalled.value.args
    assert x_best.tolist() == [1.0] and ys == ["solution at 1.0"]


@pytest.mark.parametrize("x0", [[2.0, -1.0], [-1.5, 2.5]])
def test_xtol_keeps_the_known_solution_and_never_costs_evaluations(x0):
    problem = _quadratic_problem()
    counts = {}
    for xtol in (None, 1e-3):
        points = []
        result = hg.solve(problem, np.array(x0), tol=1e-9, xtol=xtol,
                          on_evaluation=lambda info: points.append(info["hyperparameters"]))
        assert result.converged, result.message
        assert np.linalg.norm(result.hyperparameters - _quadratic_solution()) <= 1e-3
        np.testing.assert_allclose(result.model, np.maximum(_M @ result.hyperparameters, 0), atol=1e-6)
        counts[xtol] = len(points)
    assert counts[1e-3] <= counts[None]
